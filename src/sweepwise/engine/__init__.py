"""The engine: the controller's loop, its hooks and the experiment lease, on the core's protocols."""
