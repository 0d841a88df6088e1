"""Outputs for people: coverage, maps and their Leaflet assets, figures, the committee report, the
streets layer."""
