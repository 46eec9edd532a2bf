"""The stewardship workbench: admin views under /admin/workbench/ (see urls.py) and the dashboard on the index."""
