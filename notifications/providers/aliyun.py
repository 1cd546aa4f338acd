"""SMS through Alibaba Cloud (dysmsapi, SendSms), signed as its RPC-style API requires.

Aliyun only sends approved templates: the rendered text goes in as one template parameter
(TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM, default "content"), so the approved template is just
"${content}". OutId is the outbox id: every attempt at one message carries the same one,
so a report for an attempt whose answer we never got still names the message.
"""

import base64
import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from django.conf import settings

from members.phones import phone_national

from . import OutgoingMessage, ProviderError
from .common import call, failure, json_or_empty, transient_status

logger = logging.getLogger(__name__)

API_VERSION = "2017-05-25"
# Rate limits and Aliyun's own hiccups; a later attempt may pass.
TRANSIENT_CODES = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isp.SYSTEM_ERROR",
    "isp.GATEWAY_ERROR",
    "isp.UNKNOWN",
    "ServiceUnavailable",
    "InternalError",
    "SignatureNonceUsed",
}
TRANSIENT_PREFIXES = ("Throttling",)


def percent_encode(value: str) -> str:
    """RFC 3986, as Aliyun signs: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(value, safe="~")


def signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """HMAC-SHA1, keyed with the secret and "&", over the method, "/" and the sorted,
    percent-encoded parameters; base64."""
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(value)}" for key, value in sorted(params.items())
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def transient_code(code: str) -> bool:
    return code in TRANSIENT_CODES or code.startswith(TRANSIENT_PREFIXES)


class AliyunSmsProvider:
    name = "aliyun"

    def send(self, message: OutgoingMessage) -> str:
        key_id = settings.TIERFLOW_ALIYUN_ACCESS_KEY_ID
        secret = settings.TIERFLOW_ALIYUN_ACCESS_KEY_SECRET
        if not (key_id and secret):
            raise ProviderError("aliyun: the access key is not configured.", permanent=True)
        params = {
            "AccessKeyId": key_id,
            "Action": "SendSms",
            "Format": "JSON",
            # Aliyun wants mainland numbers bare, others with their country code, no "+".
            "PhoneNumbers": phone_national(message.recipient),
            "SignName": settings.TIERFLOW_ALIYUN_SMS_SIGN_NAME,
            "TemplateCode": settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE,
            "TemplateParam": json.dumps(
                {settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM: message.body}, ensure_ascii=False
            ),
            "OutId": str(message.notification_id),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        params["Signature"] = signature(params, secret)
        # POSTed as a form, so the number and the text stay out of URLs and their logs.
        response = call(self.name, "POST", settings.TIERFLOW_ALIYUN_SMS_ENDPOINT, data=params)
        answer = json_or_empty(response)
        code = str(answer.get("Code", ""))
        if response.status_code == 200 and code == "OK" and answer.get("BizId"):
            logger.info(
                "aliyun sms #%s to %s accepted as %s",
                message.notification_id,
                message.masked_recipient(),
                answer["BizId"],
            )
            return str(answer["BizId"])
        if code == "OK":
            raise failure(self.name, "accepted without a BizId.", permanent=True)
        if not code:
            raise failure(
                self.name,
                f"HTTP {response.status_code} without an error code.",
                permanent=not transient_status(response.status_code),
            )
        permanent = not (transient_code(code) or transient_status(response.status_code))
        raise failure(self.name, f"{code}: {answer.get('Message', '')}", permanent=permanent)
