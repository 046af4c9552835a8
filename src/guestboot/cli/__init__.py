"""Front ends: argument parsing and presentation only. The only place that prints or exits."""
