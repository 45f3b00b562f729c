"""The app's tabs, one module each: layout and wiring, the work done by ``demo.controller``."""
