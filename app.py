#!/usr/bin/env python3
"""CDK entry point: read the configuration from the cdk context, build the stacks, synthesize.

cdk-nag (AwsSolutions and Serverless packs) runs during synthesis; an unacknowledged finding fails it.
See docs/deployment.md.
"""

import sys

from aws_cdk import App

from infra.application import build_app
from infra.config import ConfigError, load_config

app = App()
try:
    config = load_config(app)
except ConfigError as error:
    sys.exit(f"error: {error}")
build_app(app, config)
app.synth()
