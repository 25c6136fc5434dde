-- Whom an operation's token was addressed to: a user who asked for his own change from the certified interface, or
-- nobody in particular (NULL: the service's token validators). A new token goes to the same people as the first, never
-- to whoever asks for it.
ALTER TABLE operation ADD COLUMN token_to_user_id bigint REFERENCES pcc_user (user_id);
