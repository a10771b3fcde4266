"""Provider webhook formats: one module per provider (vocabulary and decoder); ``registry`` names them."""
