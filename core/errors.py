"""Domain errors that every interface reports the same way."""

from django.core.exceptions import ObjectDoesNotExist


class NotFound(ObjectDoesNotExist):
    """What a client named by its id (in a URL or a request body) does not exist: the API
    answers 404 with the message, the admin shows the message."""
