"""DRF's content negotiation, remembered per (Accept header, renderer classes).

DefaultContentNegotiation parses the Accept header and matches it against every renderer on each request; the
answer depends only on the header and the renderers' media types, and clients send the same few headers again
and again. A `?format=` override or a format suffix is negotiated as DRF does, every time.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

_MAX_ENTRIES = 256
_chosen: dict[tuple, tuple[int, str]] = {}  # (Accept header, renderer classes) -> (renderer index, media type)


class RememberingContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE):
            return super().select_renderer(request, renderers, format_suffix)
        key = (request.META.get("HTTP_ACCEPT"), tuple(type(r) for r in renderers))
        chosen = _chosen.get(key)
        if chosen is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)  # may raise 406
            chosen = (next(i for i, r in enumerate(renderers) if r is renderer), media_type)
            if len(_chosen) >= _MAX_ENTRIES:
                _chosen.clear()
            _chosen[key] = chosen
        return renderers[chosen[0]], chosen[1]
