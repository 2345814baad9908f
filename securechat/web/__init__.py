"""The browser client: static files served by the web port (see securechat/server/web.py)."""
