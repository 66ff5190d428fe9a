-- signup: POST /api/v1/signup/credentials with a new email every request.
-- args[1]: a run tag, so repeated runs on one database never collide;
-- args[2]: the password.

local counter = 0
local tag = "x"
local password = ""
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  tag = args[1]
  password = args[2]
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"s%s-t%d-%d@bench.example.com","password":"%s","passwordConfirm":"%s",'
      .. '"firstName":"Bench","lastName":"User %d"}',
    tag, tid, counter, password, password, counter
  )
  return wrk.format("POST", "/api/v1/signup/credentials", headers, body)
end
