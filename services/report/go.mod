module github.com/afteraction/afteraction/services/report

go 1.26
