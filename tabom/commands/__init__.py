"""Thin typer commands, one module per `tabom` verb; heavy imports stay inside function bodies."""
