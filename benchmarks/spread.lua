-- wrk script: one request in N asks the server to close its connection.
--
-- wrk opens all its connections at once, to workers that all sit idle: which worker
-- accepts each one is decided by the kernel's scheduler within a millisecond, and one
-- worker often takes them all, for the whole run. A closed connection is opened again
-- at once (wrk reconnects) while requests are flowing, and goes to the worker that
-- accepts first, in practice the less busy one: over a run, the connections spread over
-- the workers, as a proxy's do when it recycles its upstream connections.
--
-- Usage: wrk ... --script=spread.lua URL -- N   (counted per wrk thread)

local every = 0
local sent = 0
local close_request
local keep_alive_request

function init(args)
   every = tonumber(args[1]) or 0
   close_request = wrk.format(nil, nil, { Connection = "close" })
   keep_alive_request = wrk.format()
end

function request()
   sent = sent + 1
   if every > 0 and sent % every == 0 then
      return close_request
   end
   return keep_alive_request
end
