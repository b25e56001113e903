"""One router per resource; `headwater.faces.api.app` collects them in `ROUTERS`."""
