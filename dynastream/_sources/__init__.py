"""
Reading DynamoDB outside Lambda: the AWS clients, the stream runner, the backfill, failed batches.
"""
