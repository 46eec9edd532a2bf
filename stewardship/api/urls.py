"""URLs under /api/v1/ for this app."""

urlpatterns: list = []
