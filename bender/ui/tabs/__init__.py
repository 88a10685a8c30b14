"""One module per tab: layout plus event handlers that turn widget values into library calls."""
