module github.com/afteraction/afteraction/services/intake

go 1.26
