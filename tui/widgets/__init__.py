"""The main screen's widgets, one module each, styles in the .tcss beside them."""
