"""lambdasim: an AWS Lambda + IAM + STS + CloudWatch Logs simulator for mcp-operator's tests.

It speaks AWS's wire protocols to the real SDKs (boto3, aiobotocore), checks every request and answer
against botocore's bundled service models, and verifies SigV4 signatures. It imports nothing from the
operator.
"""

from .server import AwsSimulator, AwsSimulatorConfig

__all__ = ["AwsSimulator", "AwsSimulatorConfig"]
