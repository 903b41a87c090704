"""The three deployable Lambda handlers of the Scones Unlimited workflow.

Each module here is a stand-alone AWS Lambda handler file: it imports only the standard library and
boto3, so ``sconeflow lambda package NAME`` can zip it as is and upload it to AWS Lambda. Locally the
same files run in the sconeflow Lambda runtime, whose workers point boto3 at the local gateway through
the standard ``AWS_ENDPOINT_URL`` variables.
"""
