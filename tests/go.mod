module github.com/waitron/waitron/tests

go 1.26.0

replace github.com/waitron/waitron => ../
