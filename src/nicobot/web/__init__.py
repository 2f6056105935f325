"""The Quart app's routes: pages, JSON API, webhooks and admin auth."""
