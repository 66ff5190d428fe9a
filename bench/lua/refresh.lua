-- refresh: POST /api/v1/refresh, every request with a refresh token never sent
-- before. Each thread starts from its own file of freshly minted tokens (one per
-- connection plus a reserve) and queues the successor from every 200 response,
-- so each token is presented exactly once (no reuse, no family revocation).
-- args[1]: path prefix; this thread reads args[1] .. tid .. ".txt".

local queue = {}
local head, tail = 1, 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1] .. tid .. ".txt") do
    tail = tail + 1
    queue[tail] = line
  end
end

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    -- Out of tokens (only after failed responses): send one that cannot work,
    -- so the shortage shows up as errors instead of hiding.
    starved = starved + 1
    token = "bench-starved-no-token-left"
  end
  return wrk.format("POST", "/api/v1/refresh", headers, '{"refreshToken":"' .. token .. '"}')
end

function response(status, headers, body)
  count_status(status)
  if status == 200 then
    local successor = body:match('"refreshToken":"([^"]+)"')
    if successor then
      tail = tail + 1
      queue[tail] = successor
    end
  end
end
