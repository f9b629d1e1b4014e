-- BulletDrop: POST /api/uploads/sharex, the body ShareX sends: one
-- multipart/form-data part "file" holding the file, with an API key.
--
--   wrk -s bench/wrk/sharex.lua http://127.0.0.1:PORT -- FILE API_KEY

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local boundary = "--------------------8dd0a1f2c3b4d5e6"

function init(args)
   wrk.method = "POST"
   wrk.path = "/api/uploads/sharex"
   wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
   wrk.headers["Authorization"] = "Bearer " .. args[2]
   wrk.body = "--" .. boundary .. "\r\n"
       .. "Content-Disposition: form-data; name=\"file\"; "
       .. "filename=\"shot.png\"\r\n"
       .. "Content-Type: image/png\r\n\r\n"
       .. read_file(args[1])
       .. "\r\n--" .. boundary .. "--\r\n"
end
