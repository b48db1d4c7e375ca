module github.com/afteraction/afteraction/schemas

go 1.26
