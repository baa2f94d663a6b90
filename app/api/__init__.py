"""HTTP routes: thin functions over :class:`app.service.SentimentService`."""
