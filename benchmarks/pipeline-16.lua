-- wrk script: 16 pipelined GETs of /plaintext per send (benchmarks/ab.sh -s benchmarks/pipeline-16.lua /plaintext ...)
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
