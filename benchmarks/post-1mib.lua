-- wrk script: POST a 1 MiB body (benchmarks/ab.sh -c 16 -s benchmarks/post-1mib.lua /echo ...)
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
