"""The Keras model: the factory (Embedding → LSTM/GRU → pooling → Dense), its layers, optimizers, vectors."""
