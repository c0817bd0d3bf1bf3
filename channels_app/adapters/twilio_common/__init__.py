"""What Twilio SMS and Twilio WhatsApp share: the client, webhook signatures, the two webhook routes,
status callbacks, media fetching and the table of Twilio error codes."""
