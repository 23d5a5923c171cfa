"""The pages of the web app; each module has one ``render()`` for ``st.Page``."""
