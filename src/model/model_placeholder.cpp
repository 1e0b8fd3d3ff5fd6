// Replaced by the model loader sources.
