"""AWS Lambda: each revision a published version of one function, traffic the alias ``live`` behind its function URL."""

from .connect import TYPE, LambdaConnector
from .target import LambdaTarget

connector = LambdaConnector
CAPABILITIES = LambdaTarget.capabilities
QUIET_LOGGERS = ("botocore", "aiobotocore")  # credential and retry chatter at INFO

__all__ = ["CAPABILITIES", "QUIET_LOGGERS", "TYPE", "connector"]
