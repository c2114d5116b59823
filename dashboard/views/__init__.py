"""The dashboard's page scripts, one per page, routed by dashboard/app.py (st.navigation)."""
