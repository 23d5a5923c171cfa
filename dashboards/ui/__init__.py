"""Streamlit building blocks shared by the pages (resources, session, guard, shell)."""
