"""The cloud's plumbing around the model: endpoint discovery, operations and IAM tokens.

- ``ApiEndpointService/List``: every service id the SDK may look up points back here;
- ``OperationService/Get`` and ``Cancel`` over the state's operation store (deferred
  completions, dataset validations, batch tasks);
- ``IamTokenService/Create``: any OAuth token or JWT buys the configured IAM token.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from yandex.cloud.endpoint import api_endpoint_pb2, api_endpoint_service_pb2
from yandex.cloud.endpoint import api_endpoint_service_pb2_grpc as endpoint_grpc
from yandex.cloud.iam.v1 import iam_token_service_pb2, iam_token_service_pb2_grpc
from yandex.cloud.operation import operation_pb2, operation_service_pb2_grpc

from .gateway import Gateway
from .rpc import Abort, Call, make_servicer

__all__ = ["SERVICE_IDS", "PlatformServices"]

#: Every service id the SDK may look up through discovery (its _supported_modules).
SERVICE_IDS = (
    "ai-foundation-models",
    "ai-assistants",
    "ai-files",
    "ai-llm",
    "ai-vision",
    "ai-vision-ocr",
    "ai-stt-v3",
    "ai-tts-v3",
    "ai-translate",
    "endpoint",
    "iam",
    "operation",
    "searchapi",
)

#: How long an IAM token the emulator hands out claims to live (the real one: 12 hours).
IAM_TOKEN_LIFETIME = 12 * 3600


class PlatformServices:
    """Discovery, operations and IAM, over one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.state = gateway.state

    def add_to_server(self, server: grpc.Server) -> None:
        endpoint_grpc.add_ApiEndpointServiceServicer_to_server(
            make_servicer(endpoint_grpc.ApiEndpointServiceServicer, List=self.list_endpoints),
            server,
        )
        operation_service_pb2_grpc.add_OperationServiceServicer_to_server(
            make_servicer(
                operation_service_pb2_grpc.OperationServiceServicer,
                Get=self.get_operation,
                Cancel=self.cancel_operation,
            ),
            server,
        )
        iam_token_service_pb2_grpc.add_IamTokenServiceServicer_to_server(
            make_servicer(
                iam_token_service_pb2_grpc.IamTokenServiceServicer, Create=self.iam_create
            ),
            server,
        )

    def list_endpoints(
        self, request: Any, context: grpc.ServicerContext
    ) -> api_endpoint_service_pb2.ListApiEndpointsResponse:
        def handle(call: Call) -> api_endpoint_service_pb2.ListApiEndpointsResponse:
            # Discovery is plumbing, not the model: no auth, no delay.
            self.gateway.begin("List", call, auth=False, delayed=False)
            return api_endpoint_service_pb2.ListApiEndpointsResponse(
                endpoints=[
                    api_endpoint_pb2.ApiEndpoint(id=sid, address=self.state.address)
                    for sid in SERVICE_IDS
                ]
            )

        return self.gateway.unary(context, handle)

    def get_operation(self, request: Any, context: grpc.ServicerContext) -> operation_pb2.Operation:
        return self._operation("OperationGet", request, context)

    def cancel_operation(
        self, request: Any, context: grpc.ServicerContext
    ) -> operation_pb2.Operation:
        """The emulator's operations finish at once, so cancelling just reports them."""
        return self._operation("OperationCancel", request, context)

    def _operation(
        self, method: str, request: Any, context: grpc.ServicerContext
    ) -> operation_pb2.Operation:
        def handle(call: Call) -> operation_pb2.Operation:
            self.gateway.begin(method, call, options={"operation_id": request.operation_id})
            op = self.state.poll_operation(request.operation_id)
            if op is None:
                raise Abort(
                    grpc.StatusCode.NOT_FOUND, f"Operation {request.operation_id} not found"
                )
            return op

        return self.gateway.unary(context, handle)

    def iam_create(
        self, request: Any, context: grpc.ServicerContext
    ) -> iam_token_service_pb2.CreateIamTokenResponse:
        """Exchange any OAuth token or JWT for the configured IAM token."""

        def handle(call: Call) -> iam_token_service_pb2.CreateIamTokenResponse:
            self.gateway.begin("IamTokenCreate", call, auth=False, delayed=False)
            if self.state.iam_token is None:
                raise Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "The emulator was started without an IAM token to hand out",
                )
            expires = timestamp_pb2.Timestamp()
            expires.FromSeconds(int(time.time()) + IAM_TOKEN_LIFETIME)
            return iam_token_service_pb2.CreateIamTokenResponse(
                iam_token=self.state.iam_token, expires_at=expires
            )

        return self.gateway.unary(context, handle)
