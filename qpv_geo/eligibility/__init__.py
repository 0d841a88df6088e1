"""Point -> verdict: the engine, the verdict rules, margins, projections, grid, geometry, the street
rule, lost QPV, the territory's words."""
