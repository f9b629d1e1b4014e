-- nginx's own DAV module: PUT of the same bytes.  The request is the same
-- every time (see common.lua); the server gives each one a new file,
-- /dav/<$request_id>.png (bench/upload.pl's DAV configuration), which
-- nginx writes to a temp file and renames into place: no auth, no
-- database.
--
--   wrk -s bench/wrk/dav.lua http://127.0.0.1:PORT -- FILE

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
   wrk.method = "PUT"
   wrk.path = "/dav/shot.png"
   wrk.headers["Content-Type"] = "image/png"
   wrk.body = read_file(args[1])
end
