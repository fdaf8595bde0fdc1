"""tabom: post-train masked diffusion language models with TABOM.

Importing the top package is deliberately light: it pulls in neither torch nor
transformers. Heavy modules live in subpackages and load when used.
"""

__version__ = "0.1.0"
