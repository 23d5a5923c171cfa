"""The Streamlit app."""

__all__: list[str] = []
