module github.com/afteraction/afteraction/cmd/afteraction

go 1.26
