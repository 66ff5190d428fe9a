-- login: POST /api/v1/auth/credentials, cycling through the seeded users.
-- args[1]: a file of "email<TAB>password" lines.

local users = {}
local position = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1]) do
    local email, password = line:match("^([^\t]+)\t(.+)$")
    table.insert(users, { email, password })
  end
  position = tid * 7919
end

function request()
  position = position + 1
  local user = users[(position % #users) + 1]
  local body = string.format('{"email":"%s","password":"%s"}', user[1], user[2])
  return wrk.format("POST", "/api/v1/auth/credentials", headers, body)
end
