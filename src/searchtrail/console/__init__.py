"""The web console: server-rendered pages (Jinja2 + htmx) under /console on the API's port,
with its own sign-in session; every action runs through the API's unit of work."""
