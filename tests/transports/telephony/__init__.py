"""Tests of the telephony media-stream transports (Twilio, Telnyx, Plivo, Exotel, Vonage)."""
