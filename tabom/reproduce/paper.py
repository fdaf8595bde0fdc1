"""The paper's own numbers, for orientation beside a tiny reproduction (never compared in absolute terms).

Transcribed from the TABOM paper (seed 002) on Dream-7B-Instruct and LLaDA-8B-Instruct, full-size
benchmarks; each table names its source. Scores are percentages; TDS is unitless.

    PAPER_MAIN["math"]["Dream-7B-Instruct"]["TABOM"]      # Table 3 row: {"GSM8K": 84.31, ...}
    PAPER_MAIN_SOURCE["math"]                               # "Table 3 (Mathematical Reasoning ...)"
"""

from __future__ import annotations

NOTE = ("The paper's numbers are for Dream-7B-Instruct / LLaDA-8B-Instruct on GSM8K, MATH500, HumanEval, "
        "MBPP and IFEval. They are shown for orientation only: the tiny model and its task families are "
        "not comparable in absolute terms; compare directions (which method wins, signs of gains), not values.")

MAIN_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "code": (("HumanEval", "MBPP"), ("GSM8K", "MATH500", "IFEval")),
    "math": (("GSM8K", "MATH500"), ("HumanEval", "MBPP", "IFEval")),
}
"""(in-domain, OOD) benchmark columns of Tables 2 (code) and 3 (math); averages are the paper's Avg."""

PAPER_MAIN_SOURCE: dict[str, str] = {
    "code": "Table 2 (models fine-tuned on the Code Generation dataset, Ling-Coder-SFT)",
    "math": "Table 3 (models fine-tuned on the Mathematical Reasoning dataset, MixChain-Z-PRM12K)",
}

# Each row: in-domain scores, in-domain Avg., OOD scores, OOD Avg. (the table's column order).
_T2 = {
    "Dream-7B-Instruct": {
        "No-SFT": (52.66, 58.00, 55.33, 81.41, 39.80, 56.56, 59.26),
        "SFT-GT": (61.55, 58.00, 59.78, 52.33, 32.40, 46.21, 43.65),
        "SFT-SD": (53.66, 59.20, 56.43, 81.81, 41.60, 57.10, 60.17),
        "dInfer": (57.31, 58.20, 57.76, 81.88, 39.80, 57.30, 59.66),
        "T3D": (55.48, 58.70, 57.09, 81.84, 40.70, 57.20, 59.91),
        "TABOM": (60.36, 60.60, 60.48, 81.73, 42.40, 55.45, 59.86),
    },
    "LLaDA-8B-Instruct": {
        "No-SFT": (36.01, 39.20, 37.61, 76.12, 36.20, 33.08, 48.47),
        "SFT-GT": (42.01, 32.80, 37.41, 70.73, 35.40, 34.93, 47.02),
        "SFT-SD": (39.63, 38.80, 39.22, 76.95, 35.80, 32.90, 48.55),
        "dInfer": (41.46, 38.60, 40.03, 77.33, 36.60, 33.82, 49.25),
        "T3D": (40.54, 38.70, 39.62, 77.14, 36.20, 33.36, 48.90),
        "TABOM": (42.68, 40.00, 41.34, 77.33, 38.20, 34.19, 49.91),
    },
}
_T3 = {
    "Dream-7B-Instruct": {
        "No-SFT": (81.41, 39.80, 60.61, 52.66, 58.00, 56.56, 55.74),
        "SFT-GT": (80.12, 37.40, 58.76, 46.34, 58.00, 53.23, 52.52),
        "SFT-SD": (81.95, 39.80, 60.88, 57.92, 58.60, 56.01, 57.51),
        "dInfer": (82.33, 41.60, 61.97, 56.11, 58.80, 55.82, 56.91),
        "T3D": (82.14, 40.70, 61.42, 57.01, 58.70, 55.91, 57.21),
        "TABOM": (84.31, 41.10, 62.71, 58.54, 59.20, 56.19, 57.98),
    },
    "LLaDA-8B-Instruct": {
        "No-SFT": (76.12, 36.20, 56.16, 36.01, 39.20, 33.08, 36.10),
        "SFT-GT": (74.29, 35.50, 54.90, 31.09, 40.60, 26.98, 32.89),
        "SFT-SD": (75.96, 35.70, 55.83, 36.58, 39.80, 34.38, 36.92),
        "dInfer": (76.72, 36.50, 56.61, 38.90, 39.40, 34.38, 37.56),
        "T3D": (76.34, 36.10, 56.22, 37.74, 39.60, 34.38, 37.24),
        "TABOM": (78.62, 36.80, 57.71, 40.30, 40.10, 32.98, 37.79),
    },
}
PAPER_MAIN: dict[str, dict[str, dict[str, tuple[float, ...]]]] = {"code": _T2, "math": _T3}

PARALLEL_SOURCE = "Table 4 (Dream-7B-Instruct fine-tuned on the math dataset, 2-token parallel decoding)"
PARALLEL_COLUMNS: tuple[str, ...] = ("GSM8K", "MATH500", "HumanEval", "MBPP")
PAPER_PARALLEL: dict[str, tuple[float, ...]] = {
    "No-SFT": (74.37, 31.60, 43.29, 43.60),
    "SFT-GT": (72.33, 25.40, 40.85, 40.12),
    "SFT-SD": (74.91, 34.80, 47.56, 46.40),
    "dInfer": (77.63, 33.20, 40.24, 49.20),
    "T3D": (76.72, 32.60, 41.46, 49.20),
    "TABOM": (77.79, 34.40, 45.73, 47.60),
}

ABLATION_SOURCE = "Table 5 (component analysis, Dream-7B-Instruct fine-tuned on the math dataset)"
ABLATION_COLUMNS: tuple[str, ...] = ("GSM8K", "MATH500", "HumanEval", "MBPP")
PAPER_ABLATION: dict[str, tuple[float, ...]] = {
    "Base (SFT-SD)": (81.95, 39.80, 57.92, 58.60),
    "Global timestep window / Traj. masking (only CE)": (82.18, 41.20, 56.45, 58.70),
    "Global timestep window / + Pairwise ranking": (83.10, 40.20, 57.50, 58.20),
    "Local timestep window / Traj. masking (only CE)": (82.50, 40.40, 56.80, 58.80),
    "Local timestep window / + Pairwise ranking (TABOM)": (84.31, 41.10, 58.54, 59.20),
}

TDS_SOURCE = "Table 6 (Trajectory Discrimination Score)"
TDS_COLUMNS: tuple[str, ...] = ("GSM8K", "HumanEval", "MBPP", "MATH500")
PAPER_TDS: dict[str, dict[str, tuple[float, ...]]] = {
    "LLaDA": {"No-SFT": (0.891, 1.533, 1.207, 0.943), "SFT-SD": (0.927, 1.623, 1.223, 0.924),
              "TABOM": (0.963, 1.900, 1.336, 1.076)},
    "Dream": {"No-SFT": (1.167, 0.036, 0.294, 1.413), "SFT-SD": (1.082, 0.035, 0.138, 1.428),
              "TABOM": (1.469, 0.711, 0.929, 1.471)},
}

GRID_SOURCE = "Table 7 (LLaDA GSM8K, best checkpoint per (lambda, margin); No-SFT 76.12)"
PAPER_GRID: dict[tuple[float, float], float] = {
    (1.0, 0.1): 77.94, (1.0, 0.2): 78.62, (1.0, 0.3): 78.09,
    (2.0, 0.1): 77.18, (2.0, 0.2): 78.62, (2.0, 0.3): 77.48,
}

SWEEP_SOURCE = "Table 9 (window size W, Dream fine-tuned on MixChain-Z-PRM12K, best checkpoint)"
SWEEP_COLUMNS: tuple[str, ...] = ("GSM8K", "HumanEval")
PAPER_SWEEP: dict[str, tuple[float, float]] = {
    "16": (83.78, 59.15), "32": (84.08, 60.37), "48": (83.95, 59.76), "64": (82.79, 59.15), "whole": (75.36, 58.00),
}
"""Keyed by the paper's W as text; "whole" is the paper's W = 256 (the whole 256-token response)."""
