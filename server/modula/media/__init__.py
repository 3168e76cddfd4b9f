"""Media bytes: where they are stored (storage backends), what they are (sniffing, images) and what
they may be called (names). The `cms.media` service records them; `media_http` serves them."""
