"""Phone numbers in one form everywhere: E.164 (+8613800138000). The API, the admin, the
opt-out lookup and the providers all go through phone_normalised, by way of PhoneField,
which stores and looks numbers up normalised whatever form they were given in."""

import functools
import re
import unicodedata

import phonenumbers
from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

SEPARATORS = str.maketrans("", "", " -().")
# A mainland mobile number; not 179xx, which phonenumbers reads as a dialling prefix.
CHINA_MOBILE = re.compile(r"(?:\+86)?1(?:[3-68-9][0-9]|7[0-8])[0-9]{8}")

phone_validator = RegexValidator(
    r"^\+[1-9][0-9]{5,14}$",
    _(
        "Enter a phone number: 11 digits for mainland China (13800138000), or '+' and the "
        "country code for another country (+85291234567)."
    ),
)


def phone_normalised(value: str) -> str:
    """`value` in E.164. Full-width digits (１３８…, common in Chinese input) and
    separators are accepted; a number without '+' or '00' belongs to the default country
    (TIERFLOW_SMS_DEFAULT_COUNTRY_CODE, 86). What is not a possible phone number comes
    back only cleaned, for phone_validator to refuse."""
    return _normalised(value or "", int(settings.TIERFLOW_SMS_DEFAULT_COUNTRY_CODE))


# Parsing costs tens of microseconds, and a number is normalised again at every lookup
# and save (an import of a million members does each several times).
@functools.lru_cache(maxsize=20_000)
def _normalised(value: str, country: int) -> str:
    text = unicodedata.normalize("NFKC", value).strip().translate(SEPARATORS)
    if text.startswith("00"):
        text = "+" + text[2:]
    if country == 86 and CHINA_MOBILE.fullmatch(text):
        return "+86" + text[-11:]  # what phonenumbers gives, a hundred times faster
    try:
        number = phonenumbers.parse(text, phonenumbers.region_code_for_country_code(country))
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_national(phone: str) -> str:
    """A stored number as a provider of the default country wants it: national digits
    for that country (13800138000), country code and number for the others."""
    prefix = f"+{settings.TIERFLOW_SMS_DEFAULT_COUNTRY_CODE}"
    return phone.removeprefix(prefix) if phone.startswith(prefix) else phone.removeprefix("+")


class PhoneFormField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        return phone_normalised(value) if value else value


class PhoneField(models.CharField):
    """A phone number saved, updated and looked up in E.164."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return phone_normalised(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return phone_normalised(value) if value else value

    def pre_save(self, model_instance, add):
        value = phone_normalised(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, value)
        return value

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": PhoneFormField, **kwargs})
