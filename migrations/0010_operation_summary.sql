-- What an operation asks for, in the words of its first SMS ("create user bob as a token validator with phone …"):
-- a new token's SMS says it again, and the validator sees it on the certified interface. NULL for older operations.
ALTER TABLE operation ADD COLUMN summary text;
