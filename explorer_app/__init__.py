"""The Latent Verse explorer: a Streamlit app over a checkpoint's latent space (``latent-verse explore``)."""
