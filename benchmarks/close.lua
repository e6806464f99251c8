-- close.lua: every request asks the server to close the connection, so
-- wrk opens a new one for each (HttpArena's short-lived profile, at its
-- extreme): the cost of accepting and closing.
wrk.headers["Connection"] = "close"
