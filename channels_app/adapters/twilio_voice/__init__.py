"""Twilio Voice: inbound calls answered with TwiML (greeting, agents rung one after another, voicemail),
each call one `call` entry on the caller's timeline, kept up to date by status and recording callbacks."""
